//! Live updates without a gap: the ids a [`super::ReviewSource`] reports as changed are numbered
//! here, and a page carries the number current when it was rendered. Its event stream then starts
//! with whatever changed after that number, so a change that lands between rendering the page and
//! opening the stream still reaches it.
//!
//! What it is not: a store. It keeps the last [`KEPT`] changes; a page older than that is told
//! that anything may have changed ([`ALL_CHANGED`]), and reloads.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast::{self, error::RecvError};

use super::ALL_CHANGED;

/// How many recent changes are kept for pages that connect late.
const KEPT: usize = 512;

/// The numbered changes of one source.
#[derive(Debug)]
pub struct Changes {
    state: Mutex<State>,
    tx: broadcast::Sender<String>,
}

#[derive(Debug, Default)]
struct State {
    /// The number the next change gets.
    next: u64,
    recent: VecDeque<(u64, String)>,
}

impl Changes {
    /// Numbers what `source` reports, for as long as it reports.
    pub fn follow(mut source: broadcast::Receiver<String>) -> Arc<Changes> {
        let (tx, _) = broadcast::channel(256);
        let changes = Arc::new(Changes {
            state: Mutex::new(State::default()),
            tx,
        });
        let recorder = Arc::clone(&changes);
        tokio::spawn(async move {
            loop {
                match source.recv().await {
                    Ok(id) => recorder.record(id),
                    Err(RecvError::Lagged(_)) => recorder.record(ALL_CHANGED.to_owned()),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        changes
    }

    fn record(&self, id: String) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = st.next;
        st.next += 1;
        st.recent.push_back((seq, id.clone()));
        if st.recent.len() > KEPT {
            st.recent.pop_front();
        }
        // Sent under the lock, so a subscriber sees each change either in `since`'s list or on
        // the channel, never in both and never in neither. No subscriber is no error.
        let _ = self.tx.send(id);
    }

    /// The number to render into a page, read before the page's data is.
    pub fn current(&self) -> u64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).next
    }

    /// The ids that changed from number `since` on, and a receiver of the changes after them.
    pub fn since(&self, since: u64) -> (Vec<String>, broadcast::Receiver<String>) {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let rx = self.tx.subscribe();
        let oldest = st.recent.front().map_or(st.next, |(seq, _)| *seq);
        let missed = if since > st.next {
            // Not a number this run gave out (a page from an earlier run): reload.
            vec![ALL_CHANGED.to_owned()]
        } else if since < oldest {
            vec![ALL_CHANGED.to_owned()]
        } else {
            st.recent
                .iter()
                .filter(|(seq, _)| *seq >= since)
                .map(|(_, id)| id.clone())
                .collect()
        };
        (missed, rx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn settled(changes: &Changes, n: u64) {
        for _ in 0..200 {
            if changes.current() == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the recorder did not catch up to {n}");
    }

    #[tokio::test]
    async fn a_late_subscriber_gets_what_changed_after_its_number() {
        let (tx, rx) = broadcast::channel(16);
        let changes = Changes::follow(rx);
        tx.send("a".to_owned()).unwrap();
        settled(&changes, 1).await;
        let page = changes.current();
        tx.send("b".to_owned()).unwrap();
        tx.send("c".to_owned()).unwrap();
        settled(&changes, 3).await;
        let (missed, mut rx) = changes.since(page);
        assert_eq!(missed, ["b", "c"]);
        assert_eq!(changes.since(3).0, Vec::<String>::new());
        tx.send("d".to_owned()).unwrap();
        assert_eq!(rx.recv().await.unwrap(), "d");
        // A number from the future (another run) and one older than what is kept: reload.
        assert_eq!(changes.since(99).0, [ALL_CHANGED]);
    }

    #[tokio::test]
    async fn a_page_older_than_what_is_kept_reloads() {
        let (tx, rx) = broadcast::channel(KEPT * 2);
        let changes = Changes::follow(rx);
        for i in 0..=KEPT {
            tx.send(format!("p{i}")).unwrap();
        }
        settled(&changes, u64::try_from(KEPT).unwrap() + 1).await;
        assert_eq!(changes.since(0).0, [ALL_CHANGED]);
        assert_eq!(changes.since(1).0.len(), KEPT);
    }
}
