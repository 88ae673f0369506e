"""Which slot a connection counts against, and the per-address count itself."""

from openrouter_oauth.protocol import AddressSlots, address_slot


def test_an_ipv6_host_is_counted_by_its_64():
    """One host usually owns a whole /64: counting single addresses would give it 2^64
    shares."""
    assert address_slot(("2001:db8:1:2:aaaa::1", 5000, 0, 0)) == address_slot(
        ("2001:db8:1:2:bbbb::9", 5001, 0, 0)
    )
    assert address_slot(("2001:db8:1:2::1", 1, 0, 0)) != address_slot(("2001:db8:1:3::1", 1, 0, 0))


def test_ipv4_and_its_mapped_form_are_one_slot():
    assert (
        address_slot(("::ffff:192.0.2.7", 1, 0, 0))
        == address_slot(("192.0.2.7", 2))
        == ("192.0.2.7")
    )
    assert address_slot(("fe80::1%eth0", 1, 0, 2)) == "fe80::/64"


def test_peers_without_an_address_are_not_counted():
    assert address_slot(None) is None and address_slot("/run/sock") is None


def test_slots_are_taken_and_given_back():
    slots = AddressSlots(2)
    assert slots.take("a") and slots.take("a") and not slots.take("a") and slots.take("b")
    slots.give_back("a")
    assert slots.take("a") and not slots.take("a")
    unlimited = AddressSlots(0)
    assert all(unlimited.take("a") for _ in range(100))
