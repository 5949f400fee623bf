from rest_framework.pagination import PageNumberPagination


class ImagePagination(PageNumberPagination):
    """``?page=N&page_size=M`` (up to 100 a page)."""

    page_size_query_param = "page_size"
    max_page_size = 100
