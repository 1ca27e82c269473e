//! SQL over the open account database, one module per table group.
//! Functions take a `&Connection` (a `&Transaction` derefs to one) so a
//! caller can group several changes in one transaction.

pub(crate) mod settings;
