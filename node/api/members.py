"""People: invitations and sign-up, the stewards' member list, password links, profiles.

Secrets (invitation and password-link tokens) are shown once, in the answer
that makes them; the lists show ids. Revoking an invitation takes either.
"""

from __future__ import annotations

from node.api.paging import decode_cursor, encode_cursor, page_of
from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import (
    InviteCreate,
    InviteIssued,
    InviteList,
    InviteOut,
    MemberList,
    MemberOut,
    MemberQuery,
    MemberUpdate,
    NotificationList,
    NotificationOut,
    PageQuery,
    ProfileOut,
    ProfileUpdate,
    RegisterRequest,
    ResetIssued,
    ResetRequest,
)
from node.domain.people import invitation_state
from node.services import invitations, members, notifications
from storage.models import Invitation, Member, utcnow
from storage.paging import Position
from storage.states import Role


def member_out(member: Member) -> MemberOut:
    return MemberOut(
        username=member.username,
        display_name=member.display_name,
        role=Role(member.role),
        active=member.is_active,
        created_at=member.created_at,
    )


def invite_out(invitation: Invitation) -> InviteOut:
    return InviteOut(
        id=invitation.id,
        role=Role(invitation.role),
        state=invitation_state(invitation, utcnow()).value,
        created_by=invitation.created_by.username if invitation.created_by else None,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        used_by=invitation.used_by.username if invitation.used_by else None,
        used_at=invitation.used_at,
        revoked_at=invitation.revoked_at,
    )


def profile_out(member: Member) -> ProfileOut:
    return ProfileOut(
        username=member.username,
        display_name=member.display_name,
        bio=member.bio,
        role=Role(member.role),
        created_at=member.created_at,
    )


@api.route(
    "POST",
    "/invites",
    summary="Make a single-use sign-up link (stewards)",
    tag="members",
    auth="steward",
    status=201,
    body=InviteCreate,
    response=InviteIssued,
    errors=(403, 422),
)
async def create_invite(call: ApiCall[InviteCreate, None]) -> InviteIssued:
    issued = await invitations.create_invitation(
        call.session, call.me, call.body.role, call.body.expires_in_hours
    )
    return InviteIssued(
        id=issued.invitation.id,
        token=issued.secret,
        url=issued.url,
        role=Role(issued.invitation.role),
        expires_at=issued.invitation.expires_at,
    )


@api.route(
    "GET",
    "/invites",
    summary="Invitations, newest first, with who made and who used each (stewards)",
    tag="members",
    auth="steward",
    query=PageQuery,
    response=InviteList,
    errors=(400, 403),
)
async def list_invites(call: ApiCall[None, PageQuery]) -> InviteList:
    rows = await invitations.list_invitations(
        call.session, call.me, decode_cursor(call.query.cursor), call.query.limit
    )
    page, next_cursor = page_of(rows, call.query.limit, lambda i: Position(i.created_at, i.id))
    return InviteList(items=[invite_out(i) for i in page], next=next_cursor)


@api.route(
    "DELETE",
    "/invites/{token}",
    summary="Revoke an invitation by its id or its token (stewards)",
    tag="members",
    auth="steward",
    status=204,
    errors=(403, 404, 409),
)
async def revoke_invite(call: ApiCall[None, None]) -> None:
    await invitations.revoke_invitation(call.session, call.me, call.request.match_info["token"])


@api.route(
    "POST",
    "/auth/register",
    summary="Join with an invitation",
    tag="auth",
    auth="none",
    status=201,
    body=RegisterRequest,
    response=MemberOut,
    errors=(400, 409, 422),
)
async def register(call: ApiCall[RegisterRequest, None]) -> MemberOut:
    body = call.body
    member = await invitations.register(
        call.session, body.invite, body.username, body.password, body.display_name
    )
    return member_out(member)


@api.route(
    "GET",
    "/members",
    summary="The community's members, by username; `q` searches names (stewards)",
    tag="members",
    auth="steward",
    query=MemberQuery,
    response=MemberList,
    errors=(400, 403),
)
async def list_members(call: ApiCall[None, MemberQuery]) -> MemberList:
    query = call.query
    rows = await members.list_members(
        call.session, call.me, query.q, decode_cursor(query.cursor), query.limit
    )
    page, next_cursor = page_of(rows, query.limit, lambda m: Position(m.username, m.id))
    return MemberList(items=[member_out(m) for m in page], next=next_cursor)


@api.route(
    "PATCH",
    "/members/{username}",
    summary="Change a member's role, or deactivate or reactivate them (stewards)",
    tag="members",
    auth="steward",
    body=MemberUpdate,
    response=MemberOut,
    errors=(403, 404, 409, 422),
)
async def update_member(call: ApiCall[MemberUpdate, None]) -> MemberOut:
    member = await members.update_member(
        call.session,
        call.me,
        call.request.match_info["username"],
        role=call.body.role,
        active=call.body.active,
    )
    return member_out(member)


@api.route(
    "POST",
    "/members/{username}/password-reset",
    summary="Make a one-time link for a member to set a new password (stewards)",
    tag="members",
    auth="steward",
    status=201,
    response=ResetIssued,
    errors=(403, 404, 409),
)
async def issue_reset(call: ApiCall[None, None]) -> ResetIssued:
    issued = await members.issue_reset(call.session, call.me, call.request.match_info["username"])
    return ResetIssued(
        username=issued.member.username,
        token=issued.secret,
        url=issued.url,
        expires_at=issued.expires_at,
    )


@api.route(
    "POST",
    "/auth/reset",
    summary="Set a new password with a steward's one-time link; every session ends",
    tag="auth",
    auth="none",
    status=204,
    body=ResetRequest,
    errors=(400, 422),
)
async def use_reset(call: ApiCall[ResetRequest, None]) -> None:
    await members.use_reset(call.session, call.body.token, call.body.password)


@api.route(
    "GET",
    "/me",
    summary="Your profile",
    tag="members",
    response=ProfileOut,
)
async def get_me(call: ApiCall[None, None]) -> ProfileOut:
    return profile_out(call.me)


@api.route(
    "PATCH",
    "/me",
    summary="Change your display name or bio",
    tag="members",
    body=ProfileUpdate,
    response=ProfileOut,
    errors=(422,),
)
async def update_me(call: ApiCall[ProfileUpdate, None]) -> ProfileOut:
    member = await members.update_profile(
        call.session, call.me, display_name=call.body.display_name, bio=call.body.bio
    )
    return profile_out(member)


@api.route(
    "DELETE",
    "/auth/tokens",
    summary="Sign out everywhere else: revoke every other token and browser session",
    tag="auth",
    status=204,
)
async def revoke_other_tokens(call: ApiCall[None, None]) -> None:
    keep = call.token.id if call.token is not None else None
    await members.sign_out_everywhere(call.session, call.me, keep_id=keep)


@api.route(
    "GET",
    "/me/notifications",
    summary="Your own notifications about your exchanges, newest first",
    tag="members",
    query=PageQuery,
    response=NotificationList,
    errors=(400, 401, 422),
)
async def my_notifications(call: ApiCall[None, PageQuery]) -> NotificationList:
    page, after = await notifications.page_for_member(
        call.session, call.me, decode_cursor(call.query.cursor), call.query.limit
    )
    return NotificationList(
        items=[
            NotificationOut(
                id=n.id,
                kind=n.kind,
                text=n.text,
                partnership_id=n.partnership_id,
                exchange_id=n.exchange_id,
                created_at=n.created_at,
                read=n.read_at is not None,
            )
            for n in page
        ],
        unread=await notifications.unread_for_member(call.session, call.me),
        next=encode_cursor(after) if after is not None else None,
    )


@api.route(
    "POST",
    "/me/notifications/read",
    summary="Mark all your notifications read",
    tag="members",
    status=204,
)
async def read_my_notifications(call: ApiCall[None, None]) -> None:
    await notifications.mark_all_read(call.session, call.me)
