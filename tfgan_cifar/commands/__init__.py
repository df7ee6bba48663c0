"""The command-line programs, one module each: `main()` is the console script (tfgan-train,
tfgan-evaluate, tfgan-sample; see pyproject.toml), which parses the command line and exits."""
