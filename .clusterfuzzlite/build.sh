#!/bin/bash -eu
# ClusterFuzzLite builds exactly what OSS-Fuzz builds: see ci/oss-fuzz/build.sh.
set -euo pipefail
exec "$SRC/memslot-diff/ci/oss-fuzz/build.sh"
