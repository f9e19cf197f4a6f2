"""What users run: the ``recon-ros`` command line and its subcommands (demo, replay, play,
benchmarks). Apps may use everything; nothing imports an app."""
