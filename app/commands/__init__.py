"""One module per ``lumbar-instability`` subcommand (see :mod:`app.cli`)."""
