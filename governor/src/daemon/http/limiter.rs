//! The two pieces of bookkeeping of the HTTP front that need their own tests: the per-client
//! rate limiter (a sliding window per IP, pruned so it never keeps an idle client) and the
//! backoff of the accept loop (so a failing `accept`, EMFILE above all, never spins).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Every client's requests are counted over this sliding window.
pub(super) const WINDOW: Duration = Duration::from_secs(1);

/// Most client addresses tracked at once. A new address beyond it is refused until the window
/// empties, so a flood from many addresses cannot grow the map without bound (at most a few MB).
pub(super) const MAX_CLIENTS: usize = 16_384;

/// Why [`RateLimiter::admit`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// This client already made `rps` requests within the window.
    OverLimit,
    /// [`MAX_CLIENTS`] other addresses made requests within the window.
    TooManyClients,
}

/// Per-IP sliding-window rate limiter.
///
/// Each request is admitted when its client made fewer than `rps` requests in the last
/// [`WINDOW`]. Once per window (on the first request after it) every client whose window is
/// empty is removed, so the map holds only the addresses seen within about two windows, never
/// more than `max_clients`.
#[derive(Debug)]
pub(super) struct RateLimiter {
    windows: HashMap<IpAddr, VecDeque<Instant>>,
    max_clients: usize,
    last_prune: Option<Instant>,
}

impl RateLimiter {
    /// An empty limiter that tracks at most `max_clients` addresses.
    pub(super) fn new(max_clients: usize) -> Self {
        RateLimiter {
            windows: HashMap::new(),
            max_clients,
            last_prune: None,
        }
    }

    /// Counts one request of `ip` at `now`, unless it is refused.
    pub(super) fn admit(&mut self, ip: IpAddr, now: Instant, rps: u32) -> Result<(), Refused> {
        if self
            .last_prune
            .is_none_or(|t| now.saturating_duration_since(t) >= WINDOW)
        {
            self.prune(now);
        }
        if !self.windows.contains_key(&ip) && self.windows.len() >= self.max_clients {
            return Err(Refused::TooManyClients);
        }
        let window = self.windows.entry(ip).or_default();
        expire(window, now);
        if window.len() >= usize::try_from(rps).unwrap_or(usize::MAX) {
            return Err(Refused::OverLimit);
        }
        window.push_back(now);
        Ok(())
    }

    /// Forgets every request older than the window and every client left without one, and
    /// gives back the memory a flood of addresses left behind.
    pub(super) fn prune(&mut self, now: Instant) {
        self.windows.retain(|_, window| {
            expire(window, now);
            !window.is_empty()
        });
        if self.windows.capacity() > 4 * self.windows.len().max(64) {
            self.windows.shrink_to_fit();
        }
        self.last_prune = Some(now);
    }

    /// How many client addresses are tracked.
    #[cfg(test)]
    pub(super) fn clients(&self) -> usize {
        self.windows.len()
    }
}

/// Drops the requests of `window` that are a whole [`WINDOW`] old or older.
fn expire(window: &mut VecDeque<Instant>, now: Instant) {
    while window
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        window.pop_front();
    }
}

/// Backoff of the accept loop: the pause after each failed `accept` starts at [`Backoff::FIRST`]
/// and doubles up to [`Backoff::MAX`]; a successful accept ends the burst.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    failures: u64,
    pause: Duration,
}

impl Backoff {
    /// Pause after the first failure of a burst.
    pub(super) const FIRST: Duration = Duration::from_millis(10);
    /// Longest pause.
    pub(super) const MAX: Duration = Duration::from_secs(1);

    /// Records a failed accept: the pause before the next try, and whether this failure starts
    /// a burst (the one to log).
    pub(super) fn failed(&mut self) -> (Duration, bool) {
        self.failures += 1;
        self.pause = if self.failures == 1 {
            Self::FIRST
        } else {
            (self.pause * 2).min(Self::MAX)
        };
        (self.pause, self.failures == 1)
    }

    /// Records a successful accept: how many failures the burst it ends had (0: no burst).
    pub(super) fn succeeded(&mut self) -> u64 {
        std::mem::take(&mut self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn a_client_gets_rps_requests_per_window() {
        let mut l = RateLimiter::new(MAX_CLIENTS);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(l.admit(ip(1), t0 + Duration::from_millis(i), 3), Ok(()));
        }
        let late = t0 + Duration::from_millis(999);
        assert_eq!(l.admit(ip(1), late, 3), Err(Refused::OverLimit));
        // Another client has its own window.
        assert_eq!(l.admit(ip(2), late, 3), Ok(()));
        // The first request leaves the window after exactly one window: one more is admitted.
        assert_eq!(l.admit(ip(1), t0 + WINDOW, 3), Ok(()));
        assert_eq!(l.admit(ip(1), t0 + WINDOW, 3), Err(Refused::OverLimit));
        // A lower limit (after SIGHUP) applies at once.
        assert_eq!(l.admit(ip(2), late, 1), Err(Refused::OverLimit));
    }

    #[test]
    fn idle_clients_are_evicted_once_the_window_passes() {
        let mut l = RateLimiter::new(MAX_CLIENTS);
        let t0 = Instant::now();
        for n in 0..20_000 {
            assert_eq!(l.admit(ip(n % MAX_CLIENTS as u32), t0, 50), Ok(()));
        }
        assert_eq!(l.clients(), MAX_CLIENTS);
        // Within the window nothing is evicted.
        l.prune(t0 + WINDOW - Duration::from_millis(1));
        assert_eq!(l.clients(), MAX_CLIENTS);
        // After it, every window is empty and every entry goes.
        l.prune(t0 + WINDOW);
        assert_eq!(l.clients(), 0);
        assert!(l.windows.capacity() < 1024, "{}", l.windows.capacity());

        // Requests prune by themselves: the first request a window later leaves only its client.
        for n in 0..100 {
            l.admit(ip(n), t0 + WINDOW, 50).unwrap();
        }
        assert_eq!(l.clients(), 100);
        l.admit(ip(7), t0 + 2 * WINDOW, 50).unwrap();
        assert_eq!(l.clients(), 1);
    }

    #[test]
    fn the_map_is_bounded() {
        let mut l = RateLimiter::new(4);
        let t0 = Instant::now();
        for n in 0..4 {
            l.admit(ip(n), t0, 50).unwrap();
        }
        assert_eq!(l.admit(ip(9), t0, 50), Err(Refused::TooManyClients));
        // Known clients are still served while the map is full.
        assert_eq!(l.admit(ip(0), t0, 50), Ok(()));
        assert_eq!(l.clients(), 4);
        // Once the window passed the old entries are pruned and the new client gets in.
        assert_eq!(l.admit(ip(9), t0 + WINDOW, 50), Ok(()));
        assert_eq!(l.clients(), 1);
    }

    #[test]
    fn backoff_doubles_to_one_second_and_reports_bursts() {
        let mut b = Backoff::default();
        let pauses: Vec<(u64, bool)> = (0..10)
            .map(|_| b.failed())
            .map(|(d, first)| (d.as_millis() as u64, first))
            .collect();
        assert_eq!(
            pauses,
            vec![
                (10, true),
                (20, false),
                (40, false),
                (80, false),
                (160, false),
                (320, false),
                (640, false),
                (1000, false),
                (1000, false),
                (1000, false),
            ]
        );
        assert_eq!(b.succeeded(), 10);
        assert_eq!(b.succeeded(), 0);
        // A new burst starts over.
        assert_eq!(b.failed(), (Backoff::FIRST, true));
    }
}
