//! The server's vocabulary: formats, templates and rules, stream keys and name limits. Imports
//! nothing of the server; every layer above speaks these types.

mod byte_range;
mod format;
mod names;
mod targets;
mod templates;

pub use byte_range::ByteRange;
pub use format::Format;
pub use names::{MAX_NAME_LEN, StreamKey, glob_match, specificity, without_push_secret};
pub use targets::{Cidr, refused_target};
pub use templates::*;
