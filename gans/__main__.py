from gans.cli import main

raise SystemExit(main())
