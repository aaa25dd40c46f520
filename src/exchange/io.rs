//! What goes into the machine ([`Event`]) and what comes out ([`Action`], [`Progress`]).

use crate::prelude::*;

use super::failure::{AttemptFailure, DropReason, ExchangeFailure, HttpFailure};
use super::machine::Delivered;
use super::{MeetingKey, ParticipantId};

/// Inputs to the machine. Time is not an event: see [`super::Exchange::handle_timeout`].
#[derive(Debug, Clone)]
pub enum Event {
    /// Begin, or begin again after a failure ("Try again"); after [`Event::Prepare`], send
    /// the request prepared (the host has admitted the guest).
    Start,
    /// The call waits for the socket or the host: prepare everything up to the sealed
    /// request, and send nothing until [`Event::Start`] (`machine/prepare.rs`).
    Prepare,
    /// The participants list request finished: the raw JSON body, or why not.
    ParticipantsListed(Result<String, HttpFailure>),
    /// PeerWave: the answer to [`Action::CountPreKeys`] or [`Action::PublishPreKeys`]
    /// (both list the guest's prekeys the server holds), or why there is none.
    ServerPreKeys(Result<String, HttpFailure>),
    /// The keybundle request for `participant` finished: the raw JSON body, or why not.
    BundleFetched {
        /// The device whose bundle was asked for.
        participant: ParticipantId,
        /// The body, or why there is none.
        result: Result<String, HttpFailure>,
    },
    /// A relayed participant message arrived: the event body as JSON text.
    MessageReceived(String),
    /// Emitting the request to `participant` failed (socket disconnected).
    SendFailed {
        /// The device the request was for.
        participant: ParticipantId,
    },
    /// The key of the last [`Action::DeliverKey`] is in the key provider: the machine
    /// settles what is not on the key's way (the safety number; for an answer, the short
    /// code, whose reveal it sends).
    KeyHandedOver,
    /// The key of the last [`Action::DeliverKey`] could not be handed over (the key
    /// provider refused it). The key is gone, so the exchange counts as failed and the
    /// next [`Event::Start`] asks again instead of reporting a key nobody holds.
    DeliveryFailed,
}

/// What the UI can show while the exchange runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The participants list is being fetched.
    ListingParticipants,
    /// A participant's keybundle is being fetched.
    FetchingBundle {
        /// Who.
        participant: ParticipantId,
    },
    /// The request is sent; waiting for this participant's answer.
    WaitingFor {
        /// Who.
        participant: ParticipantId,
    },
    /// An attempt failed; the next participant is asked.
    Rotating {
        /// Who failed.
        from: ParticipantId,
        /// Who is asked next.
        to: ParticipantId,
        /// Why `from` failed.
        reason: AttemptFailure,
    },
    /// A participant has not answered within `hedge_after_ms`: the next one is asked as
    /// well, and the first valid answer wins.
    Hedging {
        /// Who is still being waited for.
        waiting_for: ParticipantId,
        /// Who is asked now too.
        also_asking: ParticipantId,
    },
    /// A key (or key update) passed every check.
    KeyReceived {
        /// Who sent it.
        from: ParticipantId,
        /// Its LiveKit key index.
        key_index: u8,
    },
}

/// Outputs the caller carries out, in order.
#[derive(Debug)]
pub enum Action {
    /// Fetch the participants list; answer with [`Event::ParticipantsListed`].
    ListParticipants,
    /// PeerWave: `GET` the guest's prekeys on the server; answer with
    /// [`Event::ServerPreKeys`].
    CountPreKeys,
    /// PeerWave: `POST` this body to the guest's prekeys (after storing the state); answer
    /// with [`Event::ServerPreKeys`].
    PublishPreKeys {
        /// `{pre_keys: […]}`, public halves only.
        body: String,
    },
    /// Fetch this device's keybundle; answer with [`Event::BundleFetched`].
    FetchBundle {
        /// Whose bundle.
        participant: ParticipantId,
    },
    /// Emit the guest message event with this JSON body; on failure feed
    /// [`Event::SendFailed`].
    Send {
        /// The addressee (also inside `body`).
        participant: ParticipantId,
        /// The event body, JSON text.
        body: String,
    },
    /// Signal state changed: persist [`super::Exchange::state`].
    PersistState,
    /// Hand the key to the key provider.
    DeliverKey {
        /// The meeting key (wiped when dropped).
        key: MeetingKey,
        /// Who sent it, its index, check value and timestamp.
        delivered: Delivered,
    },
    /// Tell the page.
    Progress(Progress),
    /// An input was refused; nothing changed.
    Dropped(DropReason),
    /// The exchange gave up; [`Event::Start`] tries again.
    Failed(ExchangeFailure),
}
