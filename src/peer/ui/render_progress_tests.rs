//! The terminal lines of a long send's progress (`sending`).

use super::*;

#[test]
fn a_long_send_shows_its_progress_then_one_line_when_done() {
    let ui = Ui::new(false, true, super::super::Sink::Stdout);
    let line = |done, total| {
        let l = ui.line(UiEvent::Sending {
            room: "lab".into(),
            done,
            total,
        });
        // Without its colours (SGR sequences).
        let mut out = String::new();
        let mut it = l.chars();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                it.by_ref().find(|c| *c == 'm');
            } else {
                out.push(c);
            }
        }
        out
    };
    assert_eq!(
        line(1200, 2000),
        "   #lab: sending… 1200/2000 messages delivered (60%)"
    );
    assert_eq!(line(2000, 2000), "   #lab: all 2000 messages sent");
}
