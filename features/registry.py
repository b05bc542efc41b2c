"""Every feature: its family, its direction for the brand, and what it measures.

The single list that the builder, the indices, training, serving and the docs read.
``direction`` is +1 when a higher value is better for the brand, -1 when lower is better,
0 when it is context with no good direction (left out of the indices). Windows count
back from ``as_of``; metrics of a post count only once measured (7 days after posting).
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES: tuple[str, ...] = (
    "engagement",
    "volume",
    "consistency",
    "diligence",
    "cooperation",
    "sales",
    "category",
    "growth",
    "authenticity",
)
OTHER = "other"


@dataclass(frozen=True)
class Feature:
    """One feature: column name, family, direction (+1 higher is better for the brand, -1
    lower is, 0 context) and a one-line description."""

    name: str
    family: str
    direction: int
    description: str


def _windows(template: str, family: str, direction: int, text: str, windows=(30, 90, 180)):
    return [Feature(template.format(w=w), family, direction, text.format(w=w)) for w in windows]


FEATURES: tuple[Feature, ...] = tuple(
    [
        # engagement: how well content lands
        *_windows(
            "views_per_follower_{w}d",
            "engagement",
            +1,
            "mean views per measured post in the last {w} days / current followers",
        ),
        # (reach per post and its trend are context: they follow audience size, not how well
        # content lands, so they stay out of the index)
        *_windows(
            "log_views_per_post_{w}d",
            "engagement",
            0,
            "log(1 + mean views per measured post in the last {w} days)",
        ),
        *_windows(
            "mean_log_views_{w}d",
            "engagement",
            0,
            "mean of log(1 + views) over posts measured in the last {w} days (typical reach)",
            windows=(90, 180),
        ),
        Feature(
            "likes_per_view_90d",
            "engagement",
            +1,
            "likes / views of posts measured in the last 90 days",
        ),
        Feature("comments_per_view_90d", "engagement", +1, "comments / views, last 90 days"),
        Feature("shares_per_view_90d", "engagement", +1, "shares / views, last 90 days"),
        Feature(
            "engagement_per_view_180d",
            "engagement",
            +1,
            "(likes + comments + shares) / views, last 180 days",
        ),
        Feature(
            "views_trend",
            "engagement",
            0,
            "log mean views per post, last 30 days against last 180 days",
        ),
        # volume: how much content the creator makes
        *_windows("posts_per_week_{w}d", "volume", +1, "posts per week over the last {w} days"),
        # consistency: how regularly, whatever the rate (raw shares and recency are context:
        # they mostly measure volume, so they stay out of the index)
        Feature(
            "gap_cv_90d",
            "consistency",
            -1,
            "coefficient of variation of the gaps between posts, last 90 days (low = regular)",
        ),
        Feature(
            "gap_cv_180d", "consistency", -1, "coefficient of variation of gaps, last 180 days"
        ),
        Feature(
            "active_week_ratio_180d",
            "consistency",
            +1,
            "share of the last 26 weeks with a post / the share a poster at the same rate "
            "with random timing would reach (above 1: spread out evenly; below 1: bursts)",
        ),
        Feature(
            "active_week_share_90d", "consistency", 0, "share of the last 13 weeks with a post"
        ),
        Feature(
            "active_week_share_180d", "consistency", 0, "share of the last 26 weeks with a post"
        ),
        Feature("days_since_last_post", "consistency", 0, "days from the latest post to as_of"),
        # diligence: appetite for shoppable content
        Feature(
            "shoppable_share_90d",
            "diligence",
            +1,
            "share of posts with product links, last 90 days",
        ),
        Feature(
            "shoppable_share_all", "diligence", +1, "share of posts with product links, all history"
        ),
        Feature(
            "shoppable_per_week_30d", "diligence", +1, "shoppable posts per week, last 30 days"
        ),
        Feature(
            "shoppable_per_week_90d", "diligence", +1, "shoppable posts per week, last 90 days"
        ),
        Feature("lives_per_week_90d", "diligence", +1, "LIVE sessions per week, last 90 days"),
        Feature("live_share_180d", "diligence", +1, "share of posts that are LIVEs, last 180 days"),
        Feature(
            "log_shoppable_posts_all", "diligence", +1, "log(1 + shoppable posts), all history"
        ),
        # cooperation: how readily the creator answers and delivers for brands
        Feature(
            "past_invitations",
            "cooperation",
            0,
            "other campaigns' invitations whose answer (or silence) is known",
        ),
        Feature(
            "answer_rate",
            "cooperation",
            +1,
            "share answered, with a prior of 2 invitations at 50 %",
        ),
        Feature(
            "acceptance_rate",
            "cooperation",
            +1,
            "share accepted, with a prior of 2 invitations at 25 %",
        ),
        Feature("response_hours", "cooperation", -1, "mean hours from invitation to answer"),
        Feature(
            "delivery_rate",
            "cooperation",
            +1,
            "posts delivered / promised in ended campaigns, with a prior of 2 posts at 50 %",
        ),
        Feature(
            "campaigns_delivered",
            "cooperation",
            +1,
            "ended campaigns in which the creator delivered at least one post",
        ),
        # sales: how well content drives sales
        *_windows(
            "gpm_{w}d",
            "sales",
            +1,
            "gmv per 1,000 views of shoppable posts, last {w} days (2,000 prior views at 0)",
            windows=(90, 180),
        ),
        Feature("gpm_all", "sales", +1, "gmv per 1,000 shoppable views, all history (smoothed)"),
        *_windows(
            "orders_per_1k_views_{w}d",
            "sales",
            +1,
            "orders per 1,000 shoppable views (conversion), last {w} days (2,000 prior views at 0)",
            windows=(90, 180),
        ),
        Feature(
            "orders_per_1k_views_all",
            "sales",
            +1,
            "orders per 1,000 shoppable views (conversion), all history (smoothed)",
        ),
        # (sales per post and in total follow reach as much as skill: context, out of the index)
        Feature(
            "log_gmv_per_shoppable_post_90d",
            "sales",
            0,
            "log(1 + gmv per measured shoppable post), last 90 days",
        ),
        Feature(
            "log_gmv_per_shoppable_post_all",
            "sales",
            0,
            "log(1 + gmv per measured shoppable post), all history",
        ),
        Feature("log_gmv_90d", "sales", 0, "log(1 + gmv of posts measured in the last 90 days)"),
        Feature(
            "log_campaign_gmv_per_delivered_post",
            "sales",
            +1,
            "log(1 + past campaign gmv / (delivered posts + 1)), ended campaigns",
        ),
        # category: influence in the query's category
        Feature(
            "category_post_share_180d",
            "category",
            +1,
            "share of posts in the query's category, last 180 days",
        ),
        Feature(
            "category_post_share_all", "category", +1, "share of posts in the category, all history"
        ),
        Feature(
            "category_view_share_all", "category", +1, "share of measured views in the category"
        ),
        Feature("category_gmv_share_all", "category", +1, "share of measured gmv in the category"),
        Feature(
            "category_gpm_all",
            "category",
            +1,
            "gmv per 1,000 shoppable views in the category (2,000 prior views at 0)",
        ),
        Feature(
            "declared_category_match",
            "category",
            +1,
            "1 when the creator's declared primary category is the query's",
        ),
        # growth: momentum
        Feature("follower_growth_30d", "growth", +1, "log followers now against 30 days earlier"),
        Feature("follower_growth_90d", "growth", +1, "log followers now against 90 days earlier"),
        Feature(
            "organic_follower_growth_90d",
            "growth",
            +1,
            "log follower growth in 90 days with the jumps above the creator's own trend "
            "(beyond 10 % a week, see follower_jump_all) taken out",
        ),
        Feature(
            "views_growth_30d",
            "growth",
            +1,
            "log views of the latest 30 measured days against the 30 before",
        ),
        Feature(
            "gmv_growth_90d",
            "growth",
            +1,
            "log gmv of the latest 90 measured days against the 90 before",
        ),
        # authenticity: signs that engagement is real; fast growth as such is not one
        # (raw ratios fall with account size everywhere: context; the index reads them
        # against what is typical for the creator's size)
        Feature("comments_per_like_90d", "authenticity", 0, "comments / likes, last 90 days"),
        Feature("comments_per_like_all", "authenticity", 0, "comments / likes, all history"),
        Feature("shares_per_like_90d", "authenticity", 0, "shares / likes, last 90 days"),
        Feature(
            "comments_per_like_vs_size_90d",
            "authenticity",
            +1,
            "log(comments per like, last 90 days / the typical rate for an account of this "
            "many followers) (bought likes bring no comments; 0 = typical)",
        ),
        Feature(
            "shares_per_like_vs_size_90d",
            "authenticity",
            +1,
            "log(shares per like, last 90 days / the typical rate for this many followers) "
            "(bought likes bring no shares)",
        ),
        Feature(
            "follower_jump_180d",
            "authenticity",
            -1,
            "largest weekly follower step above the creator's own recent trend, last 180 days, "
            "beyond a 10 % tolerance (log units; steady growth, however fast, gives 0)",
        ),
        Feature(
            "follower_jump_all",
            "authenticity",
            -1,
            "largest weekly follower step above the creator's own trend, beyond 10 %, all history",
        ),
        Feature(
            "followers_without_views_90d",
            "authenticity",
            -1,
            "log follower growth in 90 days minus log growth of views per post over the same "
            "time, beyond a 50 % tolerance (followers that came without the views to match)",
        ),
        Feature(
            "view_spikiness_90d",
            "authenticity",
            0,
            "standard deviation of log(1 + views) per post, last 90 days (context: viral "
            "posts are spiky too)",
        ),
        # other: reach and context
        Feature("log_followers", OTHER, 0, "log(1 + current followers): the latest snapshot"),
        Feature("tenure_days", OTHER, 0, "days since joining the affiliate programme"),
        Feature("history_days", OTHER, 0, "days since the first post"),
        Feature("commission_rate", OTHER, 0, "the campaign's commission rate (0-1)"),
    ]
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


def family_of(name: str) -> str:
    """The family of the feature ``name``."""
    return BY_NAME[name].family


def features_of(family: str) -> list[Feature]:
    """The registry's features of ``family``, in registry order."""
    return [f for f in FEATURES if f.family == family]


def registry_frame():
    """The registry as a table (name, family, direction, description), for docs and MLflow."""
    import pandas as pd

    return pd.DataFrame([f.__dict__ for f in FEATURES])
