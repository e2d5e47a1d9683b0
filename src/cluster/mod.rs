//! What a broker needs to be one of several: where replicas go (more to come: the quorum's
//! wiring, broker registration, leadership).

pub mod committed;
pub mod controller;
pub mod node;
pub mod observer;
pub mod placement;
