# Shared by scripts/run and scripts/test: installs what a fresh Debian machine lacks.
# Each step checks first, so a second run installs nothing.

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# What building the desktop app needs (Tauri 2 on WebKitGTK 4.1, the tray on
# libayatana-appindicator), plus Node for the UI.
DESKTOP_BUILD_PACKAGES=(build-essential pkg-config file curl libssl-dev libwebkit2gtk-4.1-dev
  libayatana-appindicator3-dev librsvg2-dev libxdo-dev)

# What the package test (src-tauri/tests/package.rs) validates the packages with, as a
# distribution would: the menu entry, the AppStream metadata, Debian's policy, the .rpm's
# file list.
PACKAGE_CHECK_PACKAGES=(desktop-file-utils appstream lintian rpm)

install_rust_components() {
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
}

install_node() {
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  # Vite 7 (the UI's build) needs Node.js ^20.19 or >= 22.12, and Debian 12's own nodejs is
  # 18: say so here rather than let the build fail on a syntax error further down.
  node -e 'const [a, b] = process.versions.node.split(".").map(Number);
    process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22 ? 0 : 1)' || {
    echo "Node.js $(node --version) is too old for the UI's build (Vite 7 needs ^20.19 or >= 22.12;" \
      "Debian 12's nodejs package is 18, NodeSource's 20.x and 22.x work)" >&2
    exit 1
  }
}

# The UI's npm packages (the versions of package-lock.json) and its build, which the Tauri
# binary embeds. `npm install` rather than `npm ci`, so a second run reuses node_modules;
# the lock lists every platform's optional packages (as npm writes it), so npm install
# installs exactly its versions and leaves it unchanged.
build_ui() {
  ( cd ui && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm install --no-audit --no-fund; } && npm run build )
}

install_test_deps() {
  install_rust_components
  install_node
  # Tests: a private session bus, the keychain, a mock notification daemon, Xvfb, WebKit's
  # WebDriver, Debian's Python with dbus/gi for the tray watcher, Python venvs.
  apt_install "${DESKTOP_BUILD_PACKAGES[@]}" python3 python3-venv dbus dbus-x11 gnome-keyring \
    libsecret-tools python3-dbusmock python3-gi xvfb xauth webkit2gtk-driver postgresql \
    "${PACKAGE_CHECK_PACKAGES[@]}"
  install_packaging_tools
  if ! command -v tauri-driver >/dev/null 2>&1; then
    echo "== installing tauri-driver 2"
    cargo install tauri-driver --version '^2' --locked
  fi
}

# The server's package and its checks (crates/server/tests/packaging.rs): cargo-deb builds
# the .deb, lintian checks it, systemd-analyze checks the unit.
install_packaging_tools() {
  apt_install lintian systemd
  if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "== installing cargo-deb 3"
    cargo install cargo-deb --version '^3' --locked
  fi
}

install_run_deps() {
  install_rust_components
  install_node
  apt_install "${DESKTOP_BUILD_PACKAGES[@]}" dbus gnome-keyring
}
