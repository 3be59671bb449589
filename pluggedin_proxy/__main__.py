from pluggedin_proxy.cli import main

main()
