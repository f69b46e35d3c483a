# -*- Python -*-
# lit configuration for fusec's FileCheck tests (tests/lit/<area>/*.ir).
#
# ctest runs lit with the tool paths as parameters (tests/CMakeLists.txt):
#   --param fusec=PATH       the fusec binary              -> %fusec
#   --param filecheck=PATH   FileCheck-14                  -> FileCheck
#   --param not=PATH         LLVM's `not`                  -> not
#   --param examples=DIR     the examples/ folder          -> %examples
#   --param exec_root=DIR    where %t files go (the build tree)
# By hand, from the repository root, after building into build/:
#   python3 /usr/lib/llvm-14/build/utils/lit/lit.py -sv tests/lit \
#       --param fusec=build/bin/fusec
# The other parameters have working defaults on Debian 12 with llvm-14-tools.

import os
import shutil
import tempfile

import lit.formats

config.name = "fusec"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".ir"]
config.excludes = ["Inputs"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))

repo_root = os.path.dirname(os.path.dirname(config.test_source_root))
params = lit_config.params


def tool_path(param, default_candidates):
    """The tool named by --param, else the first candidate that exists."""
    given = params.get(param)
    if given:
        return os.path.abspath(given)
    for cand in default_candidates:
        found = shutil.which(cand) if not os.path.isabs(cand) else (
            cand if os.path.exists(cand) else None)
        if found:
            return found
    lit_config.fatal("cannot find %s: pass --param %s=PATH" % (param, param))


fusec = tool_path("fusec", [os.path.join(repo_root, "build", "bin", "fusec"), "fusec"])
filecheck = tool_path("filecheck", ["FileCheck-14", "/usr/lib/llvm-14/bin/FileCheck", "FileCheck"])
not_tool = tool_path("not", ["/usr/lib/llvm-14/bin/not"])
examples = os.path.abspath(params.get("examples", os.path.join(repo_root, "examples")))

if not os.path.exists(fusec):
    lit_config.fatal("the fusec binary %s does not exist: build it first" % fusec)

exec_root = params.get("exec_root")
if not exec_root:
    exec_root = os.path.join(tempfile.gettempdir(), "fusec-lit-%d" % os.getuid())
config.test_exec_root = os.path.abspath(exec_root)

# lit applies each substitution as a regular expression to RUN lines only, in
# order.  The tool names match whole words in command position, so that
# "FileCheck-14" or a path ending in /not stay as written.
config.substitutions.append(("%fusec", fusec))
config.substitutions.append(("%examples", examples))
config.substitutions.append((r"(?<![\w./%-])FileCheck(?![\w.-])", filecheck))
config.substitutions.append((r"(?<![\w./%-])not(?![\w.-])", not_tool))

# fusec and its tests see a predictable environment.
config.environment["LC_ALL"] = "C"
for var in ("FUSEC_CACHE_DIR", "FUSEC_BACKEND"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
