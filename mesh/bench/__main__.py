from mesh.bench.harness import main

raise SystemExit(main())
