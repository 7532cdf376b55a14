//! Socket plumbing every listener shares: connection caps ([`limits`]) sized to the
//! descriptor limit ([`fd_budget`]) and a write deadline on a stream ([`write_timeout`]).
//! No protocol here.

pub(crate) mod budget;
pub(crate) mod fd_budget;
pub(crate) mod limits;
pub(crate) mod write_timeout;

pub(crate) use budget::MemoryBudget;
pub(crate) use limits::ConnLimits;
pub(crate) use write_timeout::WriteTimeout;
