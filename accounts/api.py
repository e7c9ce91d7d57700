"""REST: who the caller is (a way for a client to check its token and see its role)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "email": serializers.EmailField(),
                "role": serializers.CharField(allow_null=True),
                "createdAt": serializers.DateTimeField(),
                "lastLoginAt": serializers.DateTimeField(allow_null=True),
            },
        )
    )
    def get(self, request):
        user = request.user
        return Response(
            {
                "email": user.email,
                "role": user.role,
                "createdAt": user.created_at,
                "lastLoginAt": user.last_login_at,
            }
        )
