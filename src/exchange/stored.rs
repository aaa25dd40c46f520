//! What the SDK keeps of a registration between page loads (sessionStorage): the server's
//! answer in its own shape, so [`super::messages::parse_registration`] reads it back, and
//! whether the host has admitted the guest.

use crate::prelude::*;

use super::json::{self, ObjectWriter, Value};

/// The record of a registration. `admitted` is kept because PeerWave does not repeat its
/// admission notice, and asking for admission again would put an admitted guest back in
/// the lobby.
pub fn registration_record(session_id: &str, meeting_id: &str, admitted: bool) -> String {
    let record = ObjectWriter::new()
        .string("session_id", session_id)
        .string("meeting_id", meeting_id);
    match admitted {
        true => record.json("admitted", "true"),
        false => record,
    }
    .finish()
}

/// Whether a stored registration record says the guest was admitted.
pub fn record_admitted(record: &str) -> bool {
    matches!(json::parse(record), Ok(Value::Object(o)) if matches!(o.get("admitted"), Some(Value::Bool(true))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::messages::parse_registration;

    #[test]
    fn a_record_reads_back_as_the_registration_it_keeps() {
        for admitted in [false, true] {
            let record = registration_record("s1", "m", admitted);
            assert_eq!(parse_registration(&record, "m").unwrap(), "s1");
            assert_eq!(record_admitted(&record), admitted);
        }
        assert!(!record_admitted("not json"));
        assert!(!record_admitted(r#"{"admitted":"true"}"#));
    }
}
