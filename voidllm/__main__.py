import sys

from voidllm.cli import main

sys.exit(main())
