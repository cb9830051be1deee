//! WASI preview 1 `poll_oneoff` bounded by the activation's deadline.
//!
//! Threat: a guest that sleeps (`std::thread::sleep`, `nanosleep`, a `poll_oneoff` clock
//! subscription) waits inside the host, where epoch interruption cannot reach it: the epoch is only
//! checked in wasm code. A guest sleeping for a day would hold its pool slot (and its instance's
//! memory) for a day, long after its caller was told it timed out; enough of them exhaust the pool.
//! No other WASI call can block for long here (stdin is an in-memory pipe, stdout/stderr are
//! captured in memory, scratch files are regular files, there are no sockets).
//!
//! wasmtime-wasi offers no hook for this: its clock traits only answer "now", and a single
//! relative clock subscription is served by a plain sleep. So the factory's linker
//! shadows `wasi_snapshot_preview1::poll_oneoff` (`shadow_poll_oneoff`) with a wrapper around
//! wasmtime-wasi's own implementation that, before delegating, caps every clock subscription
//! (relative, or absolute on the guest's monotonic or real-time clock) that would wake after the
//! activation's deadline so that it wakes at the deadline. When the call returns with a capped
//! subscription and the deadline has passed, the activation ends with [`DeadlineReached`], which
//! the activation reports as its timeout: the guest never sees a sleep end early. A poll that
//! returns before the deadline (another subscription was ready) gets its subscriptions back as
//! the guest wrote them.
//!
//! The delegation calls the ABI function wiggle generates for wasmtime-wasi
//! (`wasmtime_wasi::p1::wasi_snapshot_preview1::poll_oneoff`), the very function the stock linker
//! entry calls, with the same memory and hostcall-fuel set-up; it is public but undocumented, which
//! is one more reason wasmtime is pinned exactly.

use std::time::{Duration, Instant};

use wasmtime::{AsContextMut as _, Caller, Extern, Linker};
use wasmtime_wasi::p1::types::{
    Clockid, Event, Subclockflags, Subscription, SubscriptionClock, SubscriptionU,
};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self, WasiSnapshotPreview1 as _};
use wiggle::{GuestMemory, GuestPtr, GuestType as _};

use super::activation::ActivationState;

/// The WASI preview 1 module name.
const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// The activation's deadline passed while it waited in `poll_oneoff` on a clock that would have
/// woken it later: the activation timed out.
#[derive(Debug, thiserror::Error)]
#[error("the activation's deadline passed while it was waiting in poll_oneoff")]
pub struct DeadlineReached;

/// Replaces the `poll_oneoff` that `wasmtime_wasi::p1::add_to_linker_async` defined in `linker`
/// with the deadline-bounded one (see the module docs).
pub(crate) fn shadow_poll_oneoff(linker: &mut Linker<ActivationState>) -> wasmtime::Result<()> {
    let defined = linker
        .allow_shadowing(true)
        .func_wrap_async(
            WASI_MODULE,
            "poll_oneoff",
            |caller: Caller<'_, ActivationState>,
             (subscriptions, events, count, nevents): (i32, i32, i32, i32)| {
                Box::new(poll_oneoff(caller, subscriptions, events, count, nevents))
            },
        )
        .map(|_| ());
    // Any other name defined twice stays an error.
    linker.allow_shadowing(false);
    defined
}

/// A subscription as the guest wrote it, to be put back after a capped call.
struct Capped {
    at: GuestPtr<Subscription>,
    original: Subscription,
}

/// The shadowing `poll_oneoff(in, out, nsubscriptions, nevents) -> errno`. A wait is a tokio
/// timer: the guest's fiber is suspended and its worker free meanwhile.
async fn poll_oneoff(
    mut caller: Caller<'_, ActivationState>,
    subscriptions: i32,
    events: i32,
    count: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    // As wiggle's generated linker entry does: the calling instance's exported memory.
    let memory = caller.get_export("memory");
    let (mut memory, state) = match &memory {
        Some(Extern::Memory(memory)) => {
            let (bytes, state) = memory.data_and_store_mut(&mut caller);
            (GuestMemory::Unshared(bytes), state)
        }
        Some(Extern::SharedMemory(memory)) => {
            (GuestMemory::Shared(memory.data()), caller.data_mut())
        }
        _ => return Err(wasmtime::Error::msg("missing required memory export")),
    };
    let deadline = state.deadline();
    let wasi = state.wasi();
    wasi.set_hostcall_fuel(fuel);

    let capped = match deadline {
        Some(deadline) if within_fuel(count, fuel) => {
            cap(wasi, &mut memory, subscriptions, count, deadline)
        }
        _ => Vec::new(),
    };
    let result = wasi_snapshot_preview1::poll_oneoff(
        &mut *wasi,
        &mut memory,
        subscriptions,
        events,
        count,
        nevents,
    )
    .await;
    if capped.is_empty() {
        return result;
    }
    // A capped clock cannot fire before the deadline (tokio's sleeps last at least what they are
    // asked), so returning before it means another subscription was ready.
    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
        return Err(DeadlineReached.into());
    }
    restore(&mut memory, &capped, events, count);
    result
}

/// Whether wasmtime-wasi may wait on an array of `count` subscriptions: it serves a single one
/// at once (its plain-sleep path), and refuses a larger one that costs more host-call fuel than
/// the call has (`ENOMEM`, before reading or waiting), charging the size of its host-side copy.
/// Threat: a guest passing a huge array to make the host read it all here (host time that epoch
/// interruption cannot cut short); such an array is left for wasmtime-wasi to refuse.
fn within_fuel(count: i32, fuel: usize) -> bool {
    count == 1
        || usize::try_from(count.cast_unsigned())
            .is_ok_and(|count| count.saturating_mul(size_of::<Subscription>()) <= fuel)
}

/// Rewrites, in guest memory, every clock subscription that would wake after `deadline` into a
/// relative one that wakes at it (same clock, same precision), and returns the originals.
/// Subscriptions it cannot read or whose clock it does not know are left for wasmtime-wasi to
/// refuse.
fn cap(
    wasi: &mut wasmtime_wasi::p1::WasiP1Ctx,
    memory: &mut GuestMemory<'_>,
    subscriptions: i32,
    count: i32,
    deadline: Instant,
) -> Vec<Capped> {
    let left = nanos(deadline.saturating_duration_since(Instant::now()));
    // Wasm passes pointers and sizes as i32 bit patterns of u32 values.
    let array = GuestPtr::<Subscription>::new(subscriptions.cast_unsigned())
        .as_array(count.cast_unsigned());
    let mut capped = Vec::new();
    for at in array.iter() {
        let Ok(at) = at else { break };
        let Ok(original) = memory.read(at) else { break };
        let SubscriptionU::Clock(clock) = &original.u else {
            continue;
        };
        let absolute = clock
            .flags
            .contains(Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME);
        let wait = if !absolute {
            // Relative waits are served whatever the clock (a single one by a plain sleep).
            clock.timeout
        } else if matches!(clock.id, Clockid::Monotonic | Clockid::Realtime) {
            match wasi.clock_time_get(memory, clock.id, 0) {
                Ok(now) => clock.timeout.saturating_sub(now),
                Err(_) => continue,
            }
        } else {
            continue;
        };
        if wait <= left {
            continue;
        }
        let bounded = Subscription {
            userdata: original.userdata,
            u: SubscriptionU::Clock(SubscriptionClock {
                id: clock.id,
                timeout: left,
                precision: clock.precision,
                flags: Subclockflags::empty(),
            }),
        };
        if memory.write(at, bounded).is_ok() {
            capped.push(Capped { at, original });
        }
    }
    capped
}

/// Puts the guest's subscriptions back, unless the events were written over them (a guest may
/// pass overlapping arrays; wasmtime-wasi's own output then clobbers its input anyway).
fn restore(memory: &mut GuestMemory<'_>, capped: &[Capped], events: i32, count: i32) {
    let count = u64::from(count.cast_unsigned());
    let events_start = u64::from(events.cast_unsigned());
    let events_end = events_start + count * u64::from(Event::guest_size());
    for Capped { at, original } in capped {
        let start = u64::from(at.offset());
        let end = start + u64::from(Subscription::guest_size());
        if start < events_end && events_start < end {
            continue;
        }
        // Writable a moment ago: the guest cannot shrink its memory meanwhile.
        let _ = memory.write(*at, original.clone());
    }
}

/// `duration` in nanoseconds, saturating (a WASI timestamp is a u64 of nanoseconds).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi::WasiCtxBuilder;
    use wasmtime_wasi::p1::types::SubscriptionFdReadwrite;

    const SECOND: u64 = 1_000_000_000;

    fn clock(id: Clockid, timeout: u64, absolute: bool) -> Subscription {
        Subscription {
            userdata: timeout,
            u: SubscriptionU::Clock(SubscriptionClock {
                id,
                timeout,
                precision: 7,
                flags: if absolute {
                    Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME
                } else {
                    Subclockflags::empty()
                },
            }),
        }
    }

    /// (clock id, timeout, absolute) of a clock subscription.
    fn clock_of(subscription: &Subscription) -> (Clockid, u64, bool) {
        match &subscription.u {
            SubscriptionU::Clock(clock) => (
                clock.id,
                clock.timeout,
                clock
                    .flags
                    .contains(Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME),
            ),
            other => panic!("not a clock: {other:?}"),
        }
    }

    #[test]
    fn test_waits_past_the_deadline_are_capped_and_restored() {
        let mut wasi = WasiCtxBuilder::new().build_p1();
        let mut bytes = vec![0u8; 4096];
        let mut memory = GuestMemory::Unshared(&mut bytes);
        let now_mono = wasi
            .clock_time_get(&mut memory, Clockid::Monotonic, 0)
            .unwrap();
        let now_real = wasi
            .clock_time_get(&mut memory, Clockid::Realtime, 0)
            .unwrap();
        let hour = 3600 * SECOND;
        let subscriptions = [
            // Within the deadline: untouched.
            clock(Clockid::Monotonic, SECOND / 1000, false),
            clock(Clockid::Monotonic, now_mono + SECOND / 1000, true),
            // Past it: capped, relative and absolute, on either clock, relative on any clock.
            clock(Clockid::Monotonic, hour, false),
            clock(Clockid::Monotonic, now_mono + hour, true),
            clock(Clockid::Realtime, now_real + hour, true),
            clock(Clockid::ProcessCputimeId, hour, false),
            // An absolute wait on a clock wasmtime-wasi refuses: left for it to refuse.
            clock(Clockid::ProcessCputimeId, hour, true),
            Subscription {
                userdata: 1,
                u: SubscriptionU::FdRead(SubscriptionFdReadwrite {
                    file_descriptor: 0.into(),
                }),
            },
        ];
        let base = GuestPtr::<Subscription>::new(64);
        let array = base.as_array(u32::try_from(subscriptions.len()).unwrap());
        for (at, subscription) in array.iter().zip(&subscriptions) {
            memory.write(at.unwrap(), subscription.clone()).unwrap();
        }
        let count = i32::try_from(subscriptions.len()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let capped = cap(&mut wasi, &mut memory, 64, count, deadline);
        assert_eq!(capped.len(), 4);

        let read: Vec<Subscription> = array
            .iter()
            .map(|at| memory.read(at.unwrap()).unwrap())
            .collect();
        for index in [0, 1, 6] {
            assert_eq!(clock_of(&read[index]), clock_of(&subscriptions[index]));
        }
        assert!(matches!(read[7].u, SubscriptionU::FdRead(_)));
        for index in [2, 3, 4, 5] {
            let (id, timeout, absolute) = clock_of(&read[index]);
            assert_eq!(id, clock_of(&subscriptions[index]).0);
            assert!(!absolute);
            assert!(timeout > 9 * SECOND && timeout <= 10 * SECOND, "{timeout}");
            assert_eq!(read[index].userdata, subscriptions[index].userdata);
        }

        // Events elsewhere: the guest's subscriptions come back as written.
        restore(&mut memory, &capped, 2048, count);
        for (at, subscription) in array.iter().zip(&subscriptions[..7]) {
            assert_eq!(
                clock_of(&memory.read(at.unwrap()).unwrap()),
                clock_of(subscription)
            );
        }
    }

    #[test]
    fn test_arrays_wasmtime_wasi_refuses_are_not_read() {
        let one = size_of::<Subscription>();
        assert!(within_fuel(1, one));
        // A single subscription is waited on before any fuel is charged.
        assert!(within_fuel(1, 0));
        assert!(within_fuel(10, 10 * one));
        assert!(!within_fuel(11, 10 * one));
        assert!(!within_fuel(-1, 128 << 20));
        assert!(within_fuel(0, 0));
    }

    #[test]
    fn test_overlapping_events_are_not_overwritten() {
        let mut wasi = WasiCtxBuilder::new().build_p1();
        let mut bytes = vec![0u8; 1024];
        let mut memory = GuestMemory::Unshared(&mut bytes);
        let at = GuestPtr::<Subscription>::new(64);
        memory
            .write(at, clock(Clockid::Monotonic, 3600 * SECOND, false))
            .unwrap();
        let capped = cap(&mut wasi, &mut memory, 64, 1, Instant::now());
        assert_eq!(capped.len(), 1);
        assert_eq!(clock_of(&memory.read(at).unwrap()).1, 0);
        // Events written at the same place: left as wasmtime-wasi wrote them.
        restore(&mut memory, &capped, 64, 1);
        assert_eq!(clock_of(&memory.read(at).unwrap()).1, 0);
    }
}
