"""The command line: the Typer app, its commands, the HTTP client they use, and the console."""
