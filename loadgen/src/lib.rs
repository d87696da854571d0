//! `loadgen`: the library behind `kvbench`.
