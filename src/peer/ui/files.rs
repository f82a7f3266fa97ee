//! The lines of the file transfer events (before colouring and
//! sanitising, which `render` and `Ui` do).

use super::UiEvent;
use crate::peer::files::progress;
use indicatif::HumanBytes;

pub(super) fn text(ev: &UiEvent) -> String {
    match ev {
        UiEvent::FileOffered { offer, name, size, from, own: false, .. } => format!(
            "{from} offers the file {name:?} ({}), offer {offer}: /get {offer} to fetch it, /refuse {offer} to say no",
            HumanBytes(*size)
        ),
        UiEvent::FileOffered { offer, name, size, to, .. } => {
            format!("offered {name:?} ({}) to {to}, offer {offer} (/cancel {offer} to withdraw it)", HumanBytes(*size))
        }
        UiEvent::FileProgress { name, user, sending, done, size, rate, left, .. } => {
            let dir = if *sending { format!("→ {user}") } else { format!("← {user}") };
            format!("{name} {dir} {}", progress::line(*done, *size, *rate, *left))
        }
        UiEvent::FileReceived { name, from, path, .. } => {
            format!("received {name:?} from {from}, SHA-256 checked: saved as {path}")
        }
        UiEvent::FileSent { name, to, .. } => format!("{to} has {name:?}, SHA-256 checked"),
        UiEvent::FileFailed { name, user, reason, .. } => {
            format!("the transfer of {name:?} with {user} failed: {reason}")
        }
        UiEvent::FileCancelled { name, by, .. } => format!("{by} cancelled the transfer of {name:?}"),
        UiEvent::FileRefused { name, by, reason, .. } => format!("{by} refused {name:?} ({reason})"),
        UiEvent::Files { files } if files.is_empty() => "no file offers".into(),
        UiEvent::Files { files } => {
            let mut s = String::from("file offers:");
            for f in files {
                let dir = if f.direction == "in" { "from" } else { "to" };
                s.push_str(&format!(
                    "\n  {} {:?} ({}) {dir} {}: {}",
                    f.offer,
                    f.name,
                    HumanBytes(f.size),
                    f.user,
                    f.state
                ));
            }
            s
        }
        _ => String::new(),
    }
}
