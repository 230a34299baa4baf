"""Terminal UI layer (Textual): screens that draw analysis results."""
