import sys

from ticketlens.cli.main import main

sys.exit(main())
