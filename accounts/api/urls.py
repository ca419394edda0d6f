"""Routes of the auth and profile endpoints."""

from django.urls import URLPattern, path

from accounts.api import views

urlpatterns: list[URLPattern] = [
    path("auth/register", views.RegisterView.as_view(), name="auth-register"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("user/profile", views.ProfileView.as_view(), name="user-profile"),
    path("user/password", views.ChangePasswordView.as_view(), name="user-password"),
]
