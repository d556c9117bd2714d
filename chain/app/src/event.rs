//! Events the state machine emits; the node turns them into ABCI events.

/// One event: a type from [`ferry_types::event`] and its attributes, in emission order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Event type, for example [`ferry_types::event::TRANSFER`].
    pub kind: &'static str,
    /// Key/value attributes.
    pub attributes: Vec<(&'static str, String)>,
}

impl Event {
    /// An event of `kind` with `attributes`.
    pub fn new(kind: &'static str, attributes: impl IntoIterator<Item = (&'static str, String)>) -> Self {
        Event { kind, attributes: attributes.into_iter().collect() }
    }
}

/// A list of accounts as an attribute value ([`ferry_types::event::MEMBERS`]): comma-separated,
/// in order.
pub fn accounts_text<'a>(accounts: impl IntoIterator<Item = &'a ferry_types::Address>) -> String {
    accounts.into_iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}
