//! Delivery of alerts through the OS notification service (org.freedesktop.Notifications
//! on Linux) with notify-rust. The policy decides; this only shows.

use crate::alerts::{Alert, AlertAction};
use crate::error::ClientError;

pub trait Notifier: Send + Sync {
    fn show(&self, alert: &Alert) -> Result<(), ClientError>;

    /// Called after live sync changed the cache, so a shell (the tray) can re-render.
    fn changed(&self) {}
}

pub struct DesktopNotifier;

impl Notifier for DesktopNotifier {
    fn show(&self, alert: &Alert) -> Result<(), ClientError> {
        notify_rust::Notification::new()
            .appname("creditbar")
            .summary(&alert.title)
            .body(&alert.body)
            .show()
            .map(|_| ())
            .map_err(|e| ClientError::Invalid(format!("notification service: {e}")))
    }
}

/// Shows `alert` with its actions as buttons; when one is clicked, `on_action` runs on a
/// thread of its own that waited for the notification service's `ActionInvoked` (it ends
/// when the notification is closed or acted on). Without actions, a plain notification.
pub fn show_with_actions(
    alert: &Alert,
    on_action: impl FnOnce(AlertAction) + Send + 'static,
) -> Result<(), ClientError> {
    let actions = alert.actions();
    if actions.is_empty() {
        return DesktopNotifier.show(alert);
    }
    let mut n = notify_rust::Notification::new();
    n.appname("creditbar")
        .summary(&alert.title)
        .body(&alert.body);
    for a in &actions {
        n.action(a.key(), a.label());
    }
    let handle = n
        .show()
        .map_err(|e| ClientError::Invalid(format!("notification service: {e}")))?;
    std::thread::Builder::new()
        .name("notification-action".into())
        .spawn(move || {
            #[cfg(all(unix, not(target_os = "macos")))]
            handle.wait_for_action(|key| {
                if let Some(a) = AlertAction::parse(key) {
                    on_action(a);
                }
            });
            #[cfg(not(all(unix, not(target_os = "macos"))))]
            {
                let _ = (handle, on_action);
            }
        })
        .map_err(|e| ClientError::Invalid(format!("notification action thread: {e}")))?;
    Ok(())
}
