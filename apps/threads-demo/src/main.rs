//! A plain Rust program with std threads, some nested: the target for
//! libotelctx's LD_PRELOAD propagation test. It knows nothing about
//! OpenTelemetry. It starts 3 threads; each starts 2 children; one child starts
//! a grandchild. When all are running it prints `ready <pid> <threads>` and
//! then waits until stdin is closed.
use std::io::Read;
use std::sync::{Arc, Barrier};
use std::thread;

fn main() {
    // main + 3 workers + 6 children + 1 grandchild = 11 threads
    let total = 11;
    let ready = Arc::new(Barrier::new(total));
    let release = Arc::new(Barrier::new(total));
    let mut handles = Vec::new();
    for w in 0..3 {
        let (ready, release) = (ready.clone(), release.clone());
        handles.push(thread::Builder::new().name(format!("worker-{w}")).spawn(move || {
            let mut kids = Vec::new();
            for c in 0..2 {
                let (ready, release) = (ready.clone(), release.clone());
                kids.push(thread::Builder::new().name(format!("child-{w}-{c}")).spawn(move || {
                    let grand = if w == 0 && c == 0 {
                        let (ready, release) = (ready.clone(), release.clone());
                        Some(thread::Builder::new().name("grandchild".into()).spawn(move || {
                            ready.wait();
                            release.wait();
                        }).unwrap())
                    } else {
                        None
                    };
                    ready.wait();
                    release.wait();
                    if let Some(g) = grand { g.join().unwrap(); }
                }).unwrap());
            }
            ready.wait();
            release.wait();
            for k in kids { k.join().unwrap(); }
        }).unwrap());
    }
    ready.wait();
    println!("ready {} {}", std::process::id(), total);
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    release.wait();
    for h in handles { h.join().unwrap(); }
}
