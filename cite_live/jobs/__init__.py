"""The job lifecycle: the jobs table and its states (``table``, its only writer), leases,
ingest (run a transcode, publish a version), the Dramatiq doorbell (``doorbell``), the sweeper
of lost jobs and messages, and the scheduler of periodic maintenance (``maintenance``)."""
