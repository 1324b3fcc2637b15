"""Service names from appliance names: DNS-1035 labels, or one line naming the rule."""

from __future__ import annotations

import pytest

from mesh.errors import InputError
from mesh.export.names import check_label, namespace_for, service_name, service_names


@pytest.mark.parametrize("appliance, service", [
    ("cm.contoso.test", "cm-contoso-test"),
    ("Sensor-1.Contoso.Test", "sensor-1-contoso-test"),
    ("lab-sensor", "lab-sensor"),
    ("s" * 63, "s" * 63),
])
def test_dots_become_dashes_and_letters_lowercase(appliance, service):
    assert service_name(appliance, "here") == service


@pytest.mark.parametrize("appliance, problem", [
    ("s" * 64, "is 64 characters long; a DNS label has at most 63"),
    ("sensor_1.contoso.test", "holds '_'; a DNS label has only lowercase letters, digits and '-'"),
    ("1sensor.contoso.test", "does not start with a letter"),
    ("sensor.", "does not end with a letter or digit"),
    ("sensor-", "does not end with a letter or digit"),
])
def test_a_name_that_breaks_a_rule_is_one_line_naming_it(appliance, problem):
    with pytest.raises(InputError) as caught:
        service_name(appliance, "fleet.toml: appliance 'x'")
    line = caught.value.line()
    assert "\n" not in line
    assert line.startswith("fleet.toml: appliance 'x': its Service name ")
    assert problem in line and "rename the appliance" in line


def test_two_appliances_with_one_service_name_are_refused():
    with pytest.raises(InputError) as caught:
        service_names(["a.b", "a-b"], where="f.toml", reserved={})
    assert caught.value.line() == (
        "f.toml: appliance 'a-b': its Service name 'a-b' is already appliance 'a.b''s; rename one of them")
    with pytest.raises(InputError) as caught:
        service_names(["crl"], where="f.toml", reserved={"crl": "the CRL server"})
    assert "is already the CRL server's" in caught.value.line()
    assert service_names(["a.b", "c"], where="f", reserved={"crl": "x"}) == {"a.b": "a-b", "c": "c"}


def test_namespaces_follow_dns_1123_and_default_to_the_scenario_name():
    assert namespace_for("Port 80 blocked, the proxy saves the day") == \
        "mesh-port-80-blocked-the-proxy-saves-the-day"
    assert namespace_for("x" * 100) == "mesh-" + "x" * 58
    assert namespace_for("!!!") == "mesh"
    assert check_label("2fleets", "--namespace", "fix", first_letter=False) == "2fleets"
    with pytest.raises(InputError) as caught:
        check_label("Fleet", "--namespace", "give a label", first_letter=False)
    assert caught.value.line() == ("--namespace: 'Fleet' holds 'F'; a DNS label has only lowercase "
                                   "letters, digits and '-'; give a label")
