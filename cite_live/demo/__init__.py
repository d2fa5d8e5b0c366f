"""The demo catalogue and the synthetic media it is made of, used only when asked for
(`cite-live serve --demo`); the tests and the benchmarks make their media with the same
generator (`cite_live.demo.media`)."""
