//! The approval-code key port: the secret that hashes, seals and opens codes.

use std::sync::Arc;

use async_trait::async_trait;

use crate::approval::CodeHasher;
use crate::error::StoreError;

/// The approval-code key. It comes from a secret that may still be on its way when the first
/// event after a cold start arrives (the read runs off the init path): only the operations
/// that hash, seal or open a code wait for it, and a key that cannot be read is a transient
/// failure (`StoreError::Unavailable`), never a code checked or sent without it.
#[async_trait]
pub trait CodeKey: Send + Sync {
    async fn key(&self) -> Result<Arc<CodeHasher>, StoreError>;

    /// After a code that did not verify or open with `stale` (what `key` gave): the key
    /// read again, if it may have been rotated since (bounded by the adapter); `None` when
    /// nothing newer can be had.
    async fn reread(&self, _stale: &Arc<CodeHasher>) -> Option<Arc<CodeHasher>> {
        None
    }
}

#[async_trait]
impl CodeKey for CodeHasher {
    async fn key(&self) -> Result<Arc<CodeHasher>, StoreError> {
        Ok(Arc::new(self.clone()))
    }
}
