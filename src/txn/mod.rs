//! Transactions (exactly-once): the transaction coordinator, a pure state machine over each
//! transactional id's state, and the record formats of `__transaction_state` it is persisted in.

pub mod coordinator;
pub mod log;
pub mod state;

pub use coordinator::{EndPlan, EndTxn, InitPlan, TxnConfig, TxnCoordinator};
pub use state::{TopicPartition, TxnMetadata, TxnState};
