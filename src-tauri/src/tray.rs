//! The tray: the balance as its title, an icon for the state, and a menu of read-only lines
//! and actions. It renders the glance (a pure function of the cache, see
//! creditbar_client::glance) and touches the OS only where the glance differs from what is
//! shown.

use std::sync::Mutex;

use creditbar_client::glance::Glance;
use creditbar_client::Level;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter, Manager, Wry};

use crate::state::Desktop;

const TRAY_ID: &str = "creditbar";

pub struct Tray {
    icon: TrayIcon,
    shown: Mutex<Shown>,
}

#[derive(Default)]
struct Shown {
    glance: Option<Glance>,
    lines: Vec<MenuItem<Wry>>,
    auto_refill: Option<CheckMenuItem<Wry>>,
}

/// The state's icon, with `number` drawn into it when the person asked for that.
fn icon(level: Level, number: Option<&str>) -> Option<Image<'static>> {
    let bytes: &'static [u8] = match level {
        Level::Ok => include_bytes!("../../icons/tray-healthy.png"),
        Level::Low => include_bytes!("../../icons/tray-low.png"),
        Level::Empty => include_bytes!("../../icons/tray-empty.png"),
        Level::Stale => include_bytes!("../../icons/tray-stale.png"),
    };
    let image = Image::from_bytes(bytes).ok()?;
    let Some(number) = number else {
        return Some(image);
    };
    let (w, h) = (image.width(), image.height());
    let mut rgba = image.rgba().to_vec();
    crate::badge::draw(&mut rgba, w, h, number);
    Some(Image::new_owned(rgba, w, h))
}

/// Whether a StatusNotifierItem host is on the session bus (Linux). Without one the icon
/// has nowhere to appear, and the app keeps a window open instead.
pub fn host_present() -> bool {
    #[cfg(target_os = "linux")]
    {
        let check = || -> zbus::Result<bool> {
            let conn = zbus::blocking::Connection::session()?;
            let proxy = zbus::blocking::fdo::DBusProxy::new(&conn)?;
            let name = zbus::names::BusName::try_from("org.kde.StatusNotifierWatcher")?;
            Ok(proxy.name_has_owner(name)?)
        };
        check().unwrap_or(false)
    }
    #[cfg(not(target_os = "linux"))]
    true
}

/// A built menu with handles to the items that change in place: the info lines and the
/// auto-refill check.
type BuiltMenu = (Menu<Wry>, Vec<MenuItem<Wry>>, Option<CheckMenuItem<Wry>>);

fn build_menu(app: &AppHandle, g: &Glance) -> tauri::Result<BuiltMenu> {
    let mut lines = Vec::new();
    for (i, text) in g.lines.iter().enumerate() {
        lines.push(MenuItem::with_id(
            app,
            format!("line{i}"),
            text,
            false,
            None::<&str>,
        )?);
    }
    let sep = || PredefinedMenuItem::separator(app);
    let buy = MenuItem::with_id(app, "buy", "Buy credits…", g.signed_in, None::<&str>)?;
    let refill = match g.auto_refill_on {
        Some(on) => Some(CheckMenuItem::with_id(
            app,
            "auto_refill",
            "Auto-refill",
            g.signed_in,
            on,
            None::<&str>,
        )?),
        None => None,
    };
    let refill_setup = MenuItem::with_id(
        app,
        "auto_refill_setup",
        "Set up auto-refill…",
        g.signed_in,
        None::<&str>,
    )?;
    let dashboard = MenuItem::with_id(app, "dashboard", "Open dashboard", true, None::<&str>)?;
    let sync = MenuItem::with_id(app, "sync", "Sync now", g.signed_in, None::<&str>)?;
    let account = if g.signed_in {
        MenuItem::with_id(app, "sign_out", "Sign out", true, None::<&str>)?
    } else {
        MenuItem::with_id(app, "sign_in", "Sign in…", true, None::<&str>)?
    };
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let (s1, s2, s3) = (sep()?, sep()?, sep()?);
    let mut items: Vec<&dyn IsMenuItem<Wry>> =
        lines.iter().map(|l| l as &dyn IsMenuItem<Wry>).collect();
    items.push(&s1);
    items.push(&buy);
    match &refill {
        Some(r) => items.push(r),
        None => items.push(&refill_setup),
    }
    items.push(&dashboard);
    items.push(&sync);
    items.push(&s2);
    items.push(&account);
    items.push(&s3);
    items.push(&quit);
    let menu = Menu::with_items(app, &items)?;
    Ok((menu, lines, refill))
}

/// Creates the tray with whatever the cache says now; `on_menu` runs a menu item's action
/// by its id (crate::actions, which sits above this module).
pub async fn create(app: &AppHandle, on_menu: fn(&AppHandle, &str)) -> tauri::Result<()> {
    let g = current_glance(app);
    let (menu, lines, auto_refill) = build_menu(app, &g)?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .menu(&menu)
        .title(&g.title)
        .tooltip(&g.tooltip)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, event| on_menu(app, event.id().as_ref()));
    if let Some(i) = icon(g.level, g.icon_number.as_deref()) {
        builder = builder.icon(i);
    }
    let icon = builder.build(app)?;
    let shown = Shown {
        glance: Some(g),
        lines,
        auto_refill,
    };
    app.manage(Tray {
        icon,
        shown: Mutex::new(shown),
    });
    Ok(())
}

/// The glance from the read-only cache handle: never waits for a sync holding the engine.
fn current_glance(app: &AppHandle) -> Glance {
    match app.try_state::<Desktop>() {
        Some(state) => state.reader.glance(),
        None => creditbar_client::views::unavailable_glance(),
    }
}

/// Re-renders the tray from the cache, touching only what changed. Returns how many OS
/// calls were made (0 when nothing changed).
pub async fn render(app: &AppHandle) -> usize {
    let g = current_glance(app);
    let Some(tray) = app.try_state::<Tray>() else {
        return 0;
    };
    let mut shown = tray.shown.lock().unwrap_or_else(|p| p.into_inner());
    let Some(old) = shown.glance.clone() else {
        return 0;
    };
    if old == g {
        return 0;
    }
    // Open windows follow the same glance as the tray.
    if let Err(e) = app.emit("glance", &g) {
        tracing::debug!(error = %e, "no window took the glance");
    }
    let mut touched = 0;
    let result = (|| -> tauri::Result<()> {
        if old.title != g.title {
            tray.icon.set_title(Some(&g.title))?;
            touched += 1;
        }
        // Redrawn only when what it shows changes: the state, or the number in it.
        if old.level != g.level || old.icon_number != g.icon_number {
            tray.icon
                .set_icon(icon(g.level, g.icon_number.as_deref()))?;
            touched += 1;
        }
        if old.tooltip != g.tooltip {
            tray.icon.set_tooltip(Some(&g.tooltip))?;
            touched += 1;
        }
        let same_shape = old.lines.len() == g.lines.len()
            && old.signed_in == g.signed_in
            && old.auto_refill_on.is_some() == g.auto_refill_on.is_some();
        if same_shape {
            for (i, (a, b)) in old.lines.iter().zip(&g.lines).enumerate() {
                if a != b {
                    shown.lines[i].set_text(b)?;
                    touched += 1;
                }
            }
            if let (Some(item), Some(on)) = (&shown.auto_refill, g.auto_refill_on) {
                if old.auto_refill_on != Some(on) {
                    item.set_checked(on)?;
                    touched += 1;
                }
            }
        } else {
            let (menu, lines, auto_refill) = build_menu(app, &g)?;
            tray.icon.set_menu(Some(menu))?;
            shown.lines = lines;
            shown.auto_refill = auto_refill;
            touched += 1;
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(error = %e, "tray update failed");
    }
    tracing::debug!(touched, title = %g.title, "tray rendered");
    shown.glance = Some(g);
    touched
}
