//! Peer calls polled by the coordinating task itself rather than spawned one task each: a
//! write's `Put`s are waited for in place until W is met, and only the calls still in
//! flight then move to one task of their own ([`Calls::detach`]). A task and a channel per
//! call cost more than the call (profiled under redis-benchmark: tokio's channel block and
//! task cell allocations were the largest items of the write path).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use super::Answer;

/// One peer call, answering for its replica.
pub(super) type Call<T> = Pin<Box<dyn Future<Output = Answer<T>> + Send + 'static>>;

/// Calls in flight, polled together.
pub(super) struct Calls<T> {
    pending: Vec<Call<T>>,
}

impl<T: Send + 'static> Calls<T> {
    pub(super) fn new() -> Self {
        Calls {
            pending: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, call: Call<T>) {
        self.pending.push(call);
    }

    /// Calls not yet answered.
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    /// The next answer, whichever call gives it first; `None` once no call is left.
    pub(super) async fn next(&mut self) -> Option<Answer<T>> {
        if self.pending.is_empty() {
            return None;
        }
        std::future::poll_fn(|cx| {
            for index in 0..self.pending.len() {
                if let Poll::Ready(answer) = self.pending[index].as_mut().poll(cx) {
                    // Dropping a finished call is fine; the others keep their wakers.
                    drop(self.pending.swap_remove(index));
                    return Poll::Ready(Some(answer));
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Lets the calls still in flight run to their end on one task of their own (a write's
    /// remaining `Put`s still reach their replicas after the client was answered).
    pub(super) fn detach(mut self) {
        if self.pending.is_empty() {
            return;
        }
        tokio::spawn(async move { while self.next().await.is_some() {} });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::NodeId;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    fn call(node: &str, delay_ms: u64, finished: Arc<AtomicUsize>) -> Call<u64> {
        let node = NodeId::new(node);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            Answer {
                node,
                datacenter: crate::coordinator::Datacenter::from("dc1"),
                result: Ok(delay_ms),
            }
        })
    }

    #[tokio::test]
    async fn answers_come_in_completion_order_and_detached_calls_finish() {
        let finished = Arc::new(AtomicUsize::new(0));
        let mut calls = Calls::new();
        calls.push(call("slow", 300, Arc::clone(&finished)));
        calls.push(call("fast", 1, Arc::clone(&finished)));
        calls.push(call("middle", 50, Arc::clone(&finished)));
        let first = calls.next().await.unwrap();
        assert_eq!(first.node, NodeId::new("fast"));
        let second = calls.next().await.unwrap();
        assert_eq!(second.node, NodeId::new("middle"));
        calls.detach();
        for _ in 0..200 {
            if finished.load(Ordering::SeqCst) == 3 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the detached call never finished");
    }

    #[tokio::test]
    async fn no_calls_means_no_answer() {
        let mut calls: Calls<u64> = Calls::new();
        assert!(calls.next().await.is_none());
    }
}
