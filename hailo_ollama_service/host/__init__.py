"""The machine as an operator sees it: probes of /proc, the device, the
package stack and the unit, the doctor's checks and reports, and the
metrics collector. Run by root (doctor, verify) or by the service user
(metrics); never imports ``root``."""
