from borne_cli.main import cli

cli()
