from __future__ import annotations

from rest_framework import serializers

from accounts.models import Address, User


class AddressSerializer(serializers.ModelSerializer):
    class Meta:
        model = Address
        fields = (
            "id",
            "full_name",
            "line1",
            "line2",
            "postal_code",
            "city",
            "region",
            "country",
            "phone",
            "is_default_shipping",
            "is_default_billing",
        )
        read_only_fields = fields


class CustomerSerializer(serializers.ModelSerializer):
    addresses = AddressSerializer(many=True, read_only=True)

    class Meta:
        model = User
        # No last_login: a sign-in is not a change an integrator syncs (updated_at does not move for it).
        fields = ("id", "email", "full_name", "is_active", "date_joined", "updated_at", "addresses")
        read_only_fields = fields
