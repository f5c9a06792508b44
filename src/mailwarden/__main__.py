from mailwarden.cli.main import main

raise SystemExit(main())
