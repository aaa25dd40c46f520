//! A test allocator that looks into every block as it is freed: while armed, it counts the
//! freed blocks holding a given byte pattern (a piece of a secret). Code that wipes its
//! secrets before freeing them leaves none. Test builds only.
#![allow(unsafe_code, dead_code, unreachable_pub, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

const PATTERN_LEN: usize = 16;

pub struct Scanning;

static ARMED: AtomicBool = AtomicBool::new(false);
static PATTERN: [AtomicU8; PATTERN_LEN] = [const { AtomicU8::new(0) }; PATTERN_LEN];
static HITS: AtomicUsize = AtomicUsize::new(0);
/// One scan at a time: tests in one binary run on several threads.
static EXCLUSIVE: Mutex<()> = Mutex::new(());

fn holds_pattern(block: *const u8, size: usize) -> bool {
    let pattern: [u8; PATTERN_LEN] = core::array::from_fn(|i| PATTERN[i].load(SeqCst));
    if size < PATTERN_LEN {
        return false;
    }
    (0..=size - PATTERN_LEN).any(|start| {
        (0..PATTERN_LEN).all(|i| {
            // SAFETY: `start + i < size`, inside the block being freed, which is still ours.
            unsafe { core::ptr::read_volatile(block.add(start + i)) == pattern[i] }
        })
    })
}

unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(SeqCst) && holds_pattern(ptr, layout.size()) {
            HITS.fetch_add(1, SeqCst);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    // `realloc` keeps the default: alloc, copy, dealloc, so a block left by growth is scanned.
}

/// Runs `f` with the scanner looking for `secret[..16]`; returns how many freed blocks held it.
pub fn freed_blocks_holding(secret: &[u8], f: impl FnOnce()) -> usize {
    let _one_at_a_time = EXCLUSIVE.lock().unwrap_or_else(|e| e.into_inner());
    for (slot, byte) in PATTERN.iter().zip(secret.iter().take(PATTERN_LEN)) {
        slot.store(*byte, SeqCst);
    }
    HITS.store(0, SeqCst);
    ARMED.store(true, SeqCst);
    f();
    ARMED.store(false, SeqCst);
    HITS.load(SeqCst)
}

/// Runs `f`, then looks through the stack its frames used for `secret[..16]`: whether a
/// copy was left there. Reads memory no live value owns, on purpose; test builds only.
pub fn stack_left_holding(secret: &[u8], f: impl FnOnce()) -> bool {
    let mut f = Some(f);
    run_deeper(&mut || {
        if let Some(f) = f.take() {
            f();
        }
    });
    stack_below_holds(secret)
}

/// Calls `f` below a 4 KiB pad, so its frames lie inside the probe of [`stack_below_holds`]
/// (whose own frame is entered at the same depth and covers all but its top few hundred bytes).
#[inline(never)]
fn run_deeper(f: &mut dyn FnMut()) {
    let pad = core::hint::black_box([0u8; 4096]);
    f();
    core::hint::black_box(&pad);
}

#[inline(never)]
fn stack_below_holds(secret: &[u8]) -> bool {
    const DEPTH: usize = 128 * 1024;
    let probe = core::mem::MaybeUninit::<[u8; DEPTH]>::uninit();
    let base = core::hint::black_box(probe.as_ptr()).cast::<u8>();
    let pattern = &secret[..PATTERN_LEN.min(secret.len())];
    let nz = (0..DEPTH)
        .filter(|i| unsafe { core::ptr::read_volatile(base.add(*i)) } != 0)
        .count();
    eprintln!("nonzero {nz}");
    (0..=DEPTH - pattern.len()).any(|start| {
        pattern.iter().enumerate().all(|(i, byte)| {
            // SAFETY: inside `probe`, which this frame owns; the bytes are whatever earlier
            // frames left there, which is what is being looked for.
            unsafe { core::ptr::read_volatile(base.add(start + i)) == *byte }
        })
    })
}
