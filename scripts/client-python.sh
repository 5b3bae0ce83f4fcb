# Sourced by setup-client.sh and lock-client.sh: client_python prints the Python to build the
# client's virtualenv with: $CLIENT_PYTHON if set, else a 3.12 (python3.12 on PATH, or pyenv's
# build: the machine image ships pyenv builds of 3.12 and 3.13 beside the 3.11 the project runs
# on), else a newer one. The lock is resolved on 3.12. Prints nothing and fails when there is none.
client_python() {
  local root=${PYENV_ROOT:-$HOME/.pyenv} candidate
  for candidate in "${CLIENT_PYTHON:-}" python3.12 $(ls -d "$root"/versions/3.12*/bin/python 2>/dev/null | sort -rV) \
      python3.13 $(ls -d "$root"/versions/3.1[3-9]*/bin/python 2>/dev/null | sort -rV); do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys, venv, ssl; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}
