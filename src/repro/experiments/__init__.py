"""One module per chapter: its Params (flat, with presets), VERSION, and run(params) -> stored Result."""
