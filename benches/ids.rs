//! ID encode + permute throughput (issue target: >= 10 million per second).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use linemark::ids::{IdCodec, NamespaceKey, UnitId};
use std::hint::black_box;

fn key() -> NamespaceKey {
    NamespaceKey::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
        .expect("key")
}

fn bench(c: &mut Criterion) {
    let codec = IdCodec::new(&key());
    let mut g = c.benchmark_group("ids");
    g.throughput(Throughput::Elements(1));
    let mut i = 1_048_576u64;
    g.bench_function("permute+encode (index -> 13 chars)", |b| {
        b.iter(|| {
            i += 1;
            black_box(codec.id_of(black_box(i)).encode())
        })
    });
    g.bench_function("parse+unpermute (13 chars -> index)", |b| {
        b.iter_batched(
            || codec.id_of(i).encode(),
            |s| {
                let id = UnitId::parse(std::str::from_utf8(&s).unwrap_or("")).expect("valid");
                black_box(codec.index_of(id))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    // Both cores: what a batch job (e.g. re-deriving IDs for an export) gets.
    let mut g = c.benchmark_group("ids-2-threads");
    const N: u64 = 200_000;
    g.throughput(Throughput::Elements(2 * N));
    g.bench_function("permute+encode on 2 threads", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let codec = &codec;
                    s.spawn(move || {
                        for k in 0..N {
                            black_box(codec.id_of(t * N + k).encode());
                        }
                    });
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
