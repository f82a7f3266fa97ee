//! Parsing of the room-role commands: `/kick`, `/ban`, `/unban`, `/op`,
//! `/deop`, `/invite`, `/lock`, `/unlock`, and `/create`/`/join` with a
//! room password.

use super::{room_arg, Command};

/// `[#ROOM] USER [REST]` or `[#ROOM]` for the room moderation commands.
pub(super) fn moderation(verb: &str, args: &str) -> Result<Command, String> {
    let with_user = !matches!(verb, "lock" | "unlock");
    let usage = match verb {
        "kick" => "usage: /kick [#ROOM] USER [REASON]".to_string(),
        "lock" | "unlock" => format!("usage: /{verb} [#ROOM]"),
        _ => format!("usage: /{verb} [#ROOM] USER"),
    };
    let mut rest = args.trim();
    let mut room = None;
    if let Some(r) = rest.strip_prefix('#') {
        let (name, after) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
        room = Some(name.to_string());
        rest = after.trim();
    }
    let (user, reason) = match rest.split_once(char::is_whitespace) {
        Some((u, r)) => (u, r.trim()),
        None => (rest, ""),
    };
    let ok = match (with_user, verb) {
        (false, _) => user.is_empty(),
        (true, "kick") => !user.is_empty(),
        (true, _) => !user.is_empty() && reason.is_empty(),
    };
    if !ok {
        return Err(usage);
    }
    Ok(Command::Moderate {
        action: verb.to_string(),
        room,
        user: with_user.then(|| user.to_string()),
        reason: reason.to_string(),
    })
}

/// `/create ROOM [--password [PASSWORD]]`, `/join ROOM [PASSWORD | --password]`.
pub(super) fn room_command(verb: &str, args: &str) -> Result<Command, String> {
    let create = verb == "create";
    let (name, rest) = match args.trim().split_once(char::is_whitespace) {
        Some((n, r)) => (n, r.trim()),
        None => (args.trim(), ""),
    };
    if create && !rest.is_empty() && !rest.starts_with("--password") {
        // Not a password option: a name with a space, told with the rule.
        room_arg("/create", args)?;
    }
    let room = room_arg(&format!("/{verb}"), name)?;
    if rest.is_empty() {
        return Ok(if create {
            Command::Create(room)
        } else {
            Command::Join(room)
        });
    }
    let password = match rest.strip_prefix("--password") {
        Some("") => None,
        Some(p) if p.starts_with(char::is_whitespace) => Some(p.trim().to_string()),
        _ if create => return Err("usage: /create ROOM [--password]".into()),
        _ => Some(rest.to_string()),
    };
    Ok(Command::RoomWithPassword {
        create,
        room,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    #[test]
    fn room_moderation_commands() {
        let m = |action: &str, room: Option<&str>, user: Option<&str>, reason: &str| {
            Some(Command::Moderate {
                action: action.into(),
                room: room.map(Into::into),
                user: user.map(Into::into),
                reason: reason.into(),
            })
        };
        assert_eq!(
            parse("/kick bob").unwrap(),
            m("kick", None, Some("bob"), "")
        );
        assert_eq!(
            parse("/kick #lab bob be nice").unwrap(),
            m("kick", Some("lab"), Some("bob"), "be nice")
        );
        assert_eq!(parse("/ban bob").unwrap(), m("ban", None, Some("bob"), ""));
        assert_eq!(parse("/lock").unwrap(), m("lock", None, None, ""));
        assert_eq!(
            parse("/unlock #lab").unwrap(),
            m("unlock", Some("lab"), None, "")
        );
        assert_eq!(
            parse("/op #lab amy").unwrap(),
            m("op", Some("lab"), Some("amy"), "")
        );
        assert_eq!(
            parse("/kick"),
            Err("usage: /kick [#ROOM] USER [REASON]".into())
        );
        assert_eq!(
            parse("/invite a b"),
            Err("usage: /invite [#ROOM] USER".into())
        );
        assert_eq!(parse("/lock bob"), Err("usage: /lock [#ROOM]".into()));
        assert_eq!(
            parse("/announce 10 minutes left").unwrap(),
            Some(Command::Announce("10 minutes left".into()))
        );
        let pw = |create, password: Option<&str>| {
            Some(Command::RoomWithPassword {
                create,
                room: "lab".into(),
                password: password.map(Into::into),
            })
        };
        assert_eq!(parse("/create lab --password").unwrap(), pw(true, None));
        assert_eq!(
            parse("/create lab --password s3cret pw").unwrap(),
            pw(true, Some("s3cret pw"))
        );
        assert_eq!(
            parse("/join #lab hunter22").unwrap(),
            pw(false, Some("hunter22"))
        );
        assert_eq!(parse("/join lab --password").unwrap(), pw(false, None));
        assert!(parse("/create lab extra").is_err());
    }
}
