//! Delivery of alerts through the OS notification service (org.freedesktop.Notifications
//! on Linux) with notify-rust. The policy decides; this only shows.

use crate::alerts::Alert;
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
