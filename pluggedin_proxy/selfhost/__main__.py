"""`python -m pluggedin_proxy.selfhost`: run the self-hosted App (see `cli`)."""

from pluggedin_proxy.selfhost.cli import main

main()
