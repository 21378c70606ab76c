from tools.bench.benchmark import main

raise SystemExit(main())
