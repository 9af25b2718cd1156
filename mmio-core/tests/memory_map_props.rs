//! The interval map agrees with a naive per-address model under any sequence of
//! inserts and removals.

use mmio_core::{DeviceId, MemoryMap};
use proptest::prelude::*;

const SPACE: u64 = 64;

#[derive(Clone, Debug)]
enum Op {
    Insert { first: u64, last: u64, device: u32 },
    Remove { first: u64, last: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    (0..SPACE, 0..SPACE, 0u32..5, any::<bool>()).prop_map(|(a, b, device, insert)| {
        let (first, last) = (a.min(b), a.max(b));
        if insert {
            Op::Insert {
                first,
                last,
                device,
            }
        } else {
            Op::Remove { first, last }
        }
    })
}

proptest! {
    #[test]
    fn matches_naive_model(ops in proptest::collection::vec(op(), 0..40)) {
        let mut map = MemoryMap::new();
        let mut model: Vec<Option<(u32, u64)>> = vec![None; SPACE as usize];
        for op in &ops {
            match *op {
                Op::Insert { first, last, device } => {
                    map.insert(first, last, DeviceId(device), first);
                    for addr in first..=last {
                        model[addr as usize] = Some((device, first));
                    }
                }
                Op::Remove { first, last } => {
                    map.remove(first, last);
                    for addr in first..=last {
                        model[addr as usize] = None;
                    }
                }
            }
        }
        for addr in 0..SPACE {
            let got = map.lookup(addr).map(|r| (r.device.0, r.base));
            prop_assert_eq!(got, model[addr as usize], "address {}", addr);
        }
        // Sections never overlap and are sorted.
        let ranges: Vec<(u64, u64)> = map.ranges().map(|(a, b, _)| (a, b)).collect();
        for pair in ranges.windows(2) {
            prop_assert!(pair[0].1 < pair[1].0);
        }
    }
}
