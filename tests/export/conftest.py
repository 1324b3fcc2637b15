"""A scenario with every kind of appliance and of block, exported once per module."""

from __future__ import annotations

import pytest

from mesh.export.kubernetes import export_kubernetes
from mesh.scenario.load import load_scenario

FLEET = """\
[scenario]
name = "Kube fleet"
start = 2027-01-15T09:00:00Z

[pki]
root = "Contoso Root CA"
intermediate = "Contoso Issuing CA"

[[appliance]]
name = "cm.contoso.test"
role = "management-console"
connects_to = ["ha.contoso.test"]
forwards_to = ["siem.partner.test"]

[[appliance]]
name = "ha.contoso.test"
role = "ha-console"
connects_to = ["cm.contoso.test"]

[[appliance]]
name = "siem.partner.test"
role = "forwarding-target"

[[appliance]]
name = "sensor-{n}.contoso.test"
role = "sensor"
count = 8
connects_to = ["cm.contoso.test"]

[[appliance]]
name = "lab-sensor"
role = "sensor"
certificate = "self-signed"
validation = false
connects_to = ["cm.contoso.test"]

[[appliance]]
name = "Sensor-Files.contoso.test"
role = "sensor"
crl_files = true
connects_to = ["cm.contoso.test"]

# Port 80 blocked by policy for one sensor; one sensor cut off from the console's
# mesh port; nobody may reach the SIEM.
[[block]]
from = "sensor-2.contoso.test"
to = "crl"
port = 80

[[block]]
from = "sensor-3.contoso.test"
to = "cm.contoso.test"
port = 8443
drop = true

[[block]]
from = "*"
to = "siem.partner.test"

[[step]]
after = "1h"
action = "revoke"
target = "sensor-1.contoso.test"

[[step]]
after = "1h"
action = "upload"
target = "sensor-1.contoso.test"
certificate = "ca-signed"

[[expect]]
link = "sensor-4.contoso.test -> cm.contoso.test"
state = "up"
after_step = 0
"""


@pytest.fixture(scope="module")
def fleet_file(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("scenario") / "fleet.toml"
    path.write_text(FLEET, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def exported(fleet_file, key_pool):
    """The fleet over 2 workers (the blocked appliances get shards of their own)."""
    scenario = load_scenario(fleet_file)
    return export_kubernetes(scenario, scenario_text=FLEET, keys=key_pool.cursor(), workers=2)
